from .clip_teacher import CLIPTeacher, load_clip_state_dict

__all__ = ['CLIPTeacher', 'load_clip_state_dict']
